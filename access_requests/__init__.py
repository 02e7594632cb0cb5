"""Access projects: applications, decisions, agreements and the projects' life (safe projects)."""
