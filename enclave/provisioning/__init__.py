"""Extract provisioning: build each project's pseudonymised, protected extract from the raw zone."""
