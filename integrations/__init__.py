"""Integrations of synthaug generators with other tools (importable as ``synthaug.integrations``)."""
