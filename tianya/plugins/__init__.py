"""pygeoapi plugins: the feature and coverage providers, the processes and the job manager.

The only modules pygeoapi loads by name (``server_config.yml``). They adapt pygeoapi's
interfaces to the library (``layers``, ``analytics``); every replacement of pygeoapi
behaviour itself is in :mod:`tianya.compat`.
"""
