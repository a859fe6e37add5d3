"""reconciler: configuration as code for Dynamics 365 Omnichannel for Customer Service."""

__version__ = "0.1.0"
