"""The web portal: a FastAPI edge registered as a JupyterHub-managed service.

People log in once at the hub (OAuth); the enclave database says who they are and the one policy
module decides every page, form and API call. Pages are server-rendered with the French state
design system (DSFR), French first with English. Workflow pages (applications, decisions) plug
in later as :class:`enclave.portal.extensions.Extension` objects.
"""
