pytest_plugins = ["healthmesh.devstack.pytest_plugin"]
