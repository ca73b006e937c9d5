"""uv's failures in one line: the package, the reason (from the output's last lines), the fix.
The outputs are uv 0.13.9's, captured in the image (python 3.11, no compiler), shortened in the middle."""

from unstuck.project import uv_errors

UWSGI = """\
Resolved 12 packages in 1.54s
   Building uwsgi==2.0.31
error: Failed to build `uwsgi==2.0.31`
  cause: The build backend returned an error
  cause: Call to `setuptools.build_meta:__legacy__.build_wheel` failed (exit status: 1)

         [stdout]
         running bdist_wheel
         running egg_info
         detected include path: ['/usr/include', '/usr/local/include']

         [stderr]
         /home/app/.unstuck/cache/builds-v0/.tmpQeO7LB/lib/python3.11/site-packages/setuptools/dist.py:765: SetuptoolsDeprecationWarning: License classifiers are deprecated.
         !!
                 Please consider removing the following classifiers in favor of a SPDX license expression:
                 License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)
         !!
           self._finalize_license_expression()
         Traceback (most recent call last):
           File "/home/app/.unstuck/cache/sdists-v11/pypi/uwsgi/2.0.31/QZhGjweZiVPeRTlz/src/uwsgiconfig.py", line 752, in __init__
             gcc_version_components = gcc_version.split('.')
         AttributeError: 'NoneType' object has no attribute 'split'
         During handling of the above exception, another exception occurred:
         Traceback (most recent call last):
           File "<string>", line 11, in <module>
           File "/home/app/.unstuck/cache/sdists-v11/pypi/uwsgi/2.0.31/QZhGjweZiVPeRTlz/src/uwsgiconfig.py", line 760, in __init__
             raise Exception("you need a C compiler to build uWSGI")
         Exception: you need a C compiler to build uWSGI

hint: Build failures usually indicate a problem with the package or the build environment
""".splitlines()

PSYCOPG_C = """\
   Building psycopg-c==3.3.9
error: Failed to build `psycopg-c==3.3.9`
  cause: The build backend returned an error
  cause: Call to `cython_backend.build_wheel` failed (exit status: 1)

         [stdout]
         running bdist_wheel
         running egg_info
         writing psycopg_c.egg-info/PKG-INFO

         [stderr]
         couldn't run 'pg_config' --includedir: [Errno 2] No such file or directory: 'pg_config'
         error: [Errno 2] No such file or directory: 'pg_config'

hint: `psycopg-c` (v3.3.9) was included because `psycopg[c]` (v3.3.9) depends on `psycopg-c`

hint: Build failures usually indicate a problem with the package or the build environment
""".splitlines()

LDAP_HEADERS = """\
error: Failed to build `python-ldap==3.4.5`
  cause: The build backend returned an error
         [stderr]
         In file included from Modules/LDAPObject.c:3:
         Modules/common.h:15:10: fatal error: lber.h: No such file or directory
            15 | #include <lber.h>
         compilation terminated.
         error: command '/usr/bin/gcc' failed with exit code 1
""".splitlines()

NO_SOLUTION = """\
Using Python 3.11.2 environment at: /home/app/.unstuck/venv
error: No solution found when resolving dependencies:
  cause: Because unstuck-no-such-package-zz was not found in the package registry and you require unstuck-no-such-package-zz==9.9.9, we can conclude that your requirements are unsatisfiable.
""".splitlines()


def test_a_missing_compiler_is_named_with_the_package_and_the_fix():
    assert uv_errors.summary(UWSGI, "failed") == (
        "uwsgi 2.0.31 cannot be built: no C compiler in this image; rebuild the image with the default "
        f"UNSTUCK_BUILD_PACKAGES (\"{uv_errors.DEFAULT_BUILD_PACKAGES}\")")


def test_a_missing_pg_config_names_libpq_dev_and_what_needed_the_package():
    summary = uv_errors.summary(PSYCOPG_C, "failed")
    assert summary.startswith("psycopg-c 3.3.9 (needed by psycopg[c]) cannot be built: pg_config is missing "
                              "(Debian package libpq-dev)"), summary


def test_a_missing_header_names_its_debian_package_and_the_build_argument():
    assert uv_errors.summary(LDAP_HEADERS, "failed") == (
        "python-ldap 3.4.5 cannot be built: the C header lber.h is missing (Debian package libldap2-dev); "
        f"rebuild the image with --build-arg UNSTUCK_BUILD_PACKAGES=\"{uv_errors.DEFAULT_BUILD_PACKAGES} libldap2-dev\"")


def test_an_unsatisfiable_requirement_is_uvs_own_reason():
    assert uv_errors.summary(NO_SOLUTION, "failed").startswith(
        "Because unstuck-no-such-package-zz was not found in the package registry")


def test_the_error_lines_keep_the_headline_and_the_cause_at_the_end():
    lines = uv_errors.error_lines(["Resolved 12 packages in 1.54s", *UWSGI])
    assert lines[0] == "error: Failed to build `uwsgi==2.0.31`"
    assert lines[-2].strip() == "Exception: you need a C compiler to build uWSGI"
    assert "    ..." in lines and len(lines) <= uv_errors.HEAD_LINES + 1 + uv_errors.TAIL_LINES
    assert uv_errors.error_lines(NO_SOLUTION) == NO_SOLUTION[1:]
    assert uv_errors.error_lines(["a", "b"]) == ["a", "b"]


def test_the_fix_names_the_build_argument_the_dockerfile_has_with_its_default():
    from pathlib import Path
    import re

    dockerfile = (Path(__file__).parents[2] / "Dockerfile").read_text()
    default = re.search(r'^ARG UNSTUCK_BUILD_PACKAGES="([^"]*)"', dockerfile, re.M).group(1)
    assert default == uv_errors.DEFAULT_BUILD_PACKAGES


def test_uv_trusts_the_system_ca_store_as_pip_does(monkeypatch, tmp_path):
    from unstuck.project import project_env

    monkeypatch.delenv("UV_SYSTEM_CERTS", raising=False)
    assert project_env.uv_environment(tmp_path)["UV_SYSTEM_CERTS"] == "1"
    monkeypatch.setenv("UV_SYSTEM_CERTS", "0")  # the user's own choice stands
    assert project_env.uv_environment(tmp_path)["UV_SYSTEM_CERTS"] == "0"
