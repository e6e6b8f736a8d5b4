"""The Azure edge: the only modules that import azure.containerregistry and azure.identity."""
