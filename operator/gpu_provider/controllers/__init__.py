"""Kopf controllers, one module per kind; handlers stay thin (parse → reconcile → status)."""
