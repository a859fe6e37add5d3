"""``aio.run``: asyncio.run that never builds the repr of a (large) result."""

import pytest

from reconciler import aio


class Big:
    reprs = 0

    def __repr__(self) -> str:
        Big.reprs += 1
        return "Big()"


def test_the_result_comes_back_without_its_repr_being_built() -> None:
    async def make() -> Big:
        return Big()

    Big.reprs = 0
    assert isinstance(aio.run(make()), Big)
    assert Big.reprs == 0


def test_an_exception_comes_back_as_raised() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        aio.run(fail())
