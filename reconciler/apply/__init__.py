"""Apply: carry out a plan against the target (the only part of the reconciler that writes)."""
