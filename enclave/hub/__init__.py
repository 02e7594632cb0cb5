"""The JupyterHub edge: authenticator, spawner and configuration (calls workflows only)."""
