"""The GitOps tests' shared code lives in gitops_render.py (importable by name: pytest puts
this folder on sys.path), which reuses the chart tests' validator."""
