"""acr-retag: unique, sortable tags for every push of a mutable tag in Azure Container Registry."""

__version__ = "0.1.0"
