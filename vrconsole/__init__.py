"""VR Console: the Django project and the inventory side (CloudStack client, sync, fleet views)."""
