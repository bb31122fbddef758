from hypothesis import settings

pytest_plugins = ["healthmesh.devstack.pytest_plugin"]

# A shared, noisy 2-core machine: no per-example deadline (speed is measured by `make bench`).
settings.register_profile("healthmesh", deadline=None, print_blob=True)
settings.load_profile("healthmesh")
