"""Record ids: the fast uuid5 is uuid5."""

import random
import uuid

import pytest

from reconciler.mapping.values import record_id


@pytest.mark.parametrize("seed", range(5))
def test_record_id_is_uuid5_of_the_namespace_and_the_key(seed: int) -> None:
    rng = random.Random(seed)
    namespace = uuid.UUID(int=rng.getrandbits(128))
    for _ in range(200):
        key = "".join(rng.choice("aZ/-_ é日🎉") for _ in range(rng.randrange(0, 40)))
        assert record_id(namespace, key) == str(uuid.uuid5(namespace, key))
