"""Loading, validating and documenting the configuration."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from jmapsyncd.config import Settings, load_config, render_reference
from jmapsyncd.errors import ConfigError
from jmapsyncd.sync.plan import ConflictPolicy

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cret-Hunter2"
MINIMAL = 'url = "https://jmap.example.com/.well-known/jmap"\nvdir = "/tmp/v"\n'


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), **extra}


class TestLoading:
    def test_minimal_file_gets_the_documented_defaults(self, tmp_path: Path) -> None:
        s = load_config(write(tmp_path, MINIMAL), env_for(tmp_path))
        assert s.url == "https://jmap.example.com/.well-known/jmap"
        assert s.vdir == Path("/tmp/v")
        assert s.pull_interval == 300
        assert s.conflict_resolution is ConflictPolicy.KEEP_BOTH
        assert (s.verify_tls, s.push, s.log_level, s.timeout) == (True, "auto", "INFO", 30.0)
        assert (s.include, s.exclude) == ([], [])
        assert s.state_db == tmp_path / "home/.local/state/jmapsyncd/state.sqlite"

    def test_state_db_default_follows_xdg_state_home(self, tmp_path: Path) -> None:
        env = env_for(tmp_path, XDG_STATE_HOME=str(tmp_path / "st"))
        s = load_config(write(tmp_path, MINIMAL), env)
        assert s.state_db == tmp_path / "st/jmapsyncd/state.sqlite"

    def test_environment_overrides_the_file(self, tmp_path: Path) -> None:
        env = env_for(
            tmp_path,
            JMAPSYNCD_PULL_INTERVAL="60",
            JMAPSYNCD_INCLUDE='["Work", "abc123"]',
            jmapsyncd_log_level="debug",
        )
        s = load_config(write(tmp_path, MINIMAL + "pull_interval = 600\n"), env)
        assert s.pull_interval == 60
        assert s.include == ["Work", "abc123"]
        assert s.log_level == "DEBUG"

    def test_environment_alone_is_enough_without_a_default_file(self, tmp_path: Path) -> None:
        env = env_for(
            tmp_path,
            XDG_CONFIG_HOME=str(tmp_path / "nothing-here"),
            JMAPSYNCD_URL="https://h.example/jmap",
            JMAPSYNCD_VDIR="~/cal",
        )
        s = load_config(None, env)
        assert s.url == "https://h.example/jmap"
        assert s.vdir == Path("~/cal").expanduser()

    def test_default_file_is_read_from_xdg_config_home(self, tmp_path: Path) -> None:
        conf = tmp_path / "xdg" / "jmapsyncd" / "config.toml"
        conf.parent.mkdir(parents=True)
        conf.write_text(MINIMAL + "timeout = 5\n")
        s = load_config(None, env_for(tmp_path, XDG_CONFIG_HOME=str(tmp_path / "xdg")))
        assert s.timeout == 5.0

    def test_settings_are_immutable(self, tmp_path: Path) -> None:
        s = load_config(write(tmp_path, MINIMAL), env_for(tmp_path))
        with pytest.raises(ValidationError):
            s.pull_interval = 10


class TestErrors:
    def test_an_explicit_missing_file_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read"):
            load_config(tmp_path / "nope.toml", env_for(tmp_path))

    def test_invalid_toml_names_the_file(self, tmp_path: Path) -> None:
        path = write(tmp_path, "url = \n")
        with pytest.raises(ConfigError, match=re.escape(str(path))):
            load_config(path, env_for(tmp_path))

    def test_unknown_key_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"pull_intervall.*unknown key"):
            load_config(write(tmp_path, MINIMAL + "pull_intervall = 5\n"), env_for(tmp_path))

    def test_missing_required_key_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="url / JMAPSYNCD_URL"):
            load_config(write(tmp_path, 'vdir = "/v"\n'), env_for(tmp_path))

    @pytest.mark.parametrize(
        ("line", "key"),
        [
            ("pull_interval = 5", "pull_interval"),
            ('pull_interval = "often"', "pull_interval"),
            ('conflict_resolution = "newest-wins"', "conflict_resolution"),
            ('push = "sometimes"', "push"),
            ('log_level = "LOUD"', "log_level"),
            ("timeout = 0", "timeout"),
            ('include = "Work"', "include"),
            ("password_command = []", "password_command"),
            ('password_command = [""]', "password_command"),
        ],
    )
    def test_bad_value_is_named_with_its_variable(
        self, tmp_path: Path, line: str, key: str
    ) -> None:
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, MINIMAL + line + "\n"), env_for(tmp_path))
        assert f"{key} / JMAPSYNCD_{key.upper()}" in str(info.value)

    @pytest.mark.parametrize(
        "url", ["ftp://h/x", "not a url", "https://user:pw@h.example/jmap", "https:///nohost"]
    )
    def test_bad_urls_are_refused(self, tmp_path: Path, url: str) -> None:
        text = f'url = "{url}"\nvdir = "/v"\n'
        with pytest.raises(ConfigError, match="url") as info:
            load_config(write(tmp_path, text), env_for(tmp_path))
        assert "pw@" not in str(info.value)

    def test_bad_value_in_the_environment_is_named(self, tmp_path: Path) -> None:
        env = env_for(tmp_path, JMAPSYNCD_TIMEOUT="soon")
        with pytest.raises(ConfigError, match="JMAPSYNCD_TIMEOUT"):
            load_config(write(tmp_path, MINIMAL), env)

    def test_list_in_the_environment_that_is_not_json_is_named(self, tmp_path: Path) -> None:
        env = env_for(tmp_path, JMAPSYNCD_INCLUDE="Work")
        with pytest.raises(ConfigError, match="JMAPSYNCD_INCLUDE: not valid JSON"):
            load_config(write(tmp_path, MINIMAL), env)

    def test_two_password_sources_are_refused(self, tmp_path: Path) -> None:
        text = MINIMAL + f'password = "{SECRET}"\npassword_file = "/p"\n'
        with pytest.raises(ConfigError, match="password, password_file") as info:
            load_config(write(tmp_path, text), env_for(tmp_path))
        assert SECRET not in str(info.value)

    def test_the_password_never_appears_in_an_error(self, tmp_path: Path) -> None:
        text = MINIMAL + f'password = ["{SECRET}"]\n'
        with pytest.raises(ConfigError, match="password") as info:
            load_config(write(tmp_path, text), env_for(tmp_path))
        assert SECRET not in str(info.value)
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__


class TestSecrets:
    def test_repr_and_str_hide_the_password(self, tmp_path: Path) -> None:
        s = load_config(write(tmp_path, MINIMAL + f'password = "{SECRET}"\n'), env_for(tmp_path))
        assert SECRET not in repr(s)
        assert SECRET not in str(s)
        assert SECRET not in str(s.model_dump())

    def test_password_is_resolved(self, tmp_path: Path) -> None:
        s = load_config(write(tmp_path, MINIMAL + f'password = "{SECRET}"\n'), env_for(tmp_path))
        assert s.resolve_password() == SECRET

    def test_no_password_source_resolves_to_none(self, tmp_path: Path) -> None:
        assert load_config(write(tmp_path, MINIMAL), env_for(tmp_path)).resolve_password() is None

    def test_password_file_is_read_and_stripped(self, tmp_path: Path) -> None:
        (tmp_path / "pw").write_text(f"{SECRET}\n")
        s = load_config(
            write(tmp_path, MINIMAL + f'password_file = "{tmp_path / "pw"}"\n'), env_for(tmp_path)
        )
        assert s.resolve_password() == SECRET

    def test_missing_password_file_is_a_config_error(self, tmp_path: Path) -> None:
        text = MINIMAL + f'password_file = "{tmp_path / "absent"}"\n'
        s = load_config(write(tmp_path, text), env_for(tmp_path))
        with pytest.raises(ConfigError, match="password_file"):
            s.resolve_password()

    def command(self, tmp_path: Path, code: str) -> Settings:
        argv = f'password_command = ["{sys.executable}", "-c", "{code}"]\n'
        return load_config(write(tmp_path, MINIMAL + argv), env_for(tmp_path))

    def test_password_command_output_is_the_stripped_secret(self, tmp_path: Path) -> None:
        s = self.command(tmp_path, f"print('  {SECRET}  ')")
        assert s.resolve_password() == SECRET

    def test_failing_password_command_is_a_clear_error_without_output(self, tmp_path: Path) -> None:
        s = self.command(tmp_path, f"import sys; print('{SECRET}'); sys.exit(4)")
        with pytest.raises(ConfigError, match="exit status 4") as info:
            s.resolve_password()
        assert SECRET not in str(info.value)

    def test_password_command_printing_nothing_is_an_error(self, tmp_path: Path) -> None:
        s = self.command(tmp_path, "pass")
        with pytest.raises(ConfigError, match="printed nothing"):
            s.resolve_password()

    def test_password_command_not_found_is_an_error(self, tmp_path: Path) -> None:
        text = MINIMAL + 'password_command = ["/nonexistent/jmapsyncd-pw"]\n'
        s = load_config(write(tmp_path, text), env_for(tmp_path))
        with pytest.raises(ConfigError, match="not found"):
            s.resolve_password()


class TestWarnings:
    def test_readable_file_with_a_password_warns(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = write(tmp_path, MINIMAL + f'password = "{SECRET}"\n', mode=0o644)
        with caplog.at_level(logging.WARNING, logger="jmapsyncd.config"):
            load_config(path, env_for(tmp_path))
        assert "group or others can read it" in caplog.text
        assert SECRET not in caplog.text

    def test_private_file_with_a_password_does_not_warn(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = write(tmp_path, MINIMAL + f'password = "{SECRET}"\n', mode=0o600)
        with caplog.at_level(logging.WARNING, logger="jmapsyncd.config"):
            load_config(path, env_for(tmp_path))
        assert caplog.records == []

    def test_verify_tls_false_warns(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="jmapsyncd.config"):
            s = load_config(write(tmp_path, MINIMAL + "verify_tls = false\n"), env_for(tmp_path))
        assert s.verify_tls is False
        assert "verify_tls is false" in caplog.text

    @pytest.mark.parametrize(
        ("url", "warns"),
        [
            ("http://jmap.example.com/jmap", True),
            ("http://127.0.0.1:8080/jmap", False),
            ("http://[::1]/jmap", False),
            ("http://localhost/jmap", False),
        ],
    )
    def test_plain_http_warns_unless_on_loopback(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture, url: str, warns: bool
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="jmapsyncd.config"):
            load_config(write(tmp_path, f'url = "{url}"\nvdir = "/v"\n'), env_for(tmp_path))
        assert ("plain http" in caplog.text) is warns

    def test_unknown_environment_variable_warns(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        env = env_for(tmp_path, JMAPSYNCD_PASWORD="x", JMAPSYNCD_TEST_SERVER="u,v,w")
        with caplog.at_level(logging.WARNING, logger="jmapsyncd.config"):
            load_config(write(tmp_path, MINIMAL), env)
        assert "JMAPSYNCD_PASWORD" in caplog.text
        assert "JMAPSYNCD_TEST_SERVER" not in caplog.text


class TestDocumentation:
    def test_every_setting_appears_in_the_example(self) -> None:
        text = (REPO / "config.example.toml").read_text()
        for name in Settings.model_fields:
            assert re.search(rf"^#? ?{name} = ", text, re.MULTILINE), name

    def test_the_example_loads(self, tmp_path: Path) -> None:
        s = load_config(REPO / "config.example.toml", env_for(tmp_path))
        assert s.password_command == ["pass", "show", "mail/alice@example.com"]
        assert s.exclude == ["Birthdays"]

    def test_every_setting_has_a_description(self) -> None:
        for name, info in Settings.model_fields.items():
            assert info.description, name

    def test_configuration_reference_is_current(self) -> None:
        current = (REPO / "docs" / "configuration.md").read_text()
        assert current == render_reference(), (
            "docs/configuration.md is stale: regenerate it with jmapsyncd.config.render_reference()"
        )
