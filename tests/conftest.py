"""Settings of the machine running the suite that would change what the CLI prints."""

import os

# Colour is chosen from the environment (reconciler.render.style.use_color): a CI runner's
# FORCE_COLOR or TERM=dumb must not decide what tests of colour see. Tests that want them
# set them with monkeypatch.
os.environ.pop("FORCE_COLOR", None)
if os.environ.get("TERM") == "dumb":
    del os.environ["TERM"]
