"""Workspaces: who may open a project's sandboxed server (:mod:`.sessions`, audited), the demo's
ready-to-open project (:mod:`.demo_project`) and template notebook runs (:mod:`.notebook_runs`)."""
