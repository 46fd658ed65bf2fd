"""The fraudwatch platform on Kubernetes: one Pulumi ComponentResource per concern."""
