"""The production entry point: what gunicorn's master has ready before it forks the workers."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from gi_service import gunicorn_conf
from tests.conftest import CACHE_DIR

# Run in a fresh interpreter, as gunicorn's master imports the app: a lookup after the import must find the
# county boundaries loaded, so loading them again is made to fail.
MASTER = textwrap.dedent("""
    import gi_service.wsgi
    from geodata.lookup import JurisdictionIndex
    from gi_service.services import jurisdiction

    loaded = jurisdiction.is_loaded()

    def load_again(*args, **kwargs):
        raise AssertionError("a place lookup loaded the county boundaries after the app was built")

    JurisdictionIndex.load = classmethod(load_again)
    print(loaded, jurisdiction.county_at(120.13, 30.25), jurisdiction.classify([116.4], [39.91])[0]["city"]["name"])
""")


def test_the_preloaded_app_has_the_county_boundaries_loaded_before_the_fork(tmp_path):
    """Is the app gunicorn preloads (gi_service.wsgi, preload_app on) built with the county boundaries already
    loaded, so a worker's first place lookup finds them in memory instead of loading them?"""
    assert gunicorn_conf.preload_app is True
    env = {k: v for k, v in os.environ.items() if not k.startswith("GI_")}
    env.update(GI_INSTANCE_PATH=str(tmp_path / "instance"), GI_CACHE_DIR=str(CACHE_DIR))
    done = subprocess.run([sys.executable, "-c", MASTER], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "330106", "北京市"]
