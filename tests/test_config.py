"""Settings from the environment: defaults, parsing, and one clear line for bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.config import ConfigError, Settings


def test_defaults_match_the_contract() -> None:
    s = Settings.from_env({})
    assert s.ollama_base_url == "http://localhost:11434"
    assert (s.max_tokens, s.temperature, s.top_p) == (2048, 0.7, 0.9)
    assert (s.timeout, s.cache_duration) == (120.0, 30.0)
    assert (s.log_level, s.host, s.port, s.reload) == ("INFO", "0.0.0.0", 8005, False)
    assert s.grpc_port == 50051
    assert s.grpc_target == "127.0.0.1:50051"


def test_values_are_read() -> None:
    s = Settings.from_env(
        {
            "OLLAMA_BASE_URL": "http://ollama:11434/",
            "OLLAMA_MAX_TOKENS": "1000",
            "OLLAMA_TEMPERATURE": "0.2",
            "LOG_LEVEL": "debug",
            "RELOAD": "true",
            "GRPC_PORT": "6000",
            "LLM_KEY_MODELS": "gpt-oss, qwen3",
        }
    )
    assert s.ollama_base_url == "http://ollama:11434"
    assert s.max_tokens == 1000 and s.temperature == 0.2
    assert s.log_level == "DEBUG" and s.reload is True and s.grpc_port == 6000
    assert s.key_models == ("gpt-oss", "qwen3")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OLLAMA_MAX_TOKENS", "lots"),
        ("OLLAMA_MAX_TOKENS", "-1"),
        ("OLLAMA_TEMPERATURE", "3"),
        ("OLLAMA_TOP_P", "0"),
        ("OLLAMA_TIMEOUT", "nan"),
        ("OLLAMA_BASE_URL", "localhost:11434"),
        ("LOG_LEVEL", "LOUD"),
        ("PORT", "70000"),
        ("RELOAD", "maybe"),
        ("LLM_KEEP_ALIVE", "5 minutes"),
        ("LLM_KEEP_ALIVE", "99999999999"),  # past what Ollama takes: every request refused
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({name: value})
    assert name in str(err.value)


def test_bad_value_stops_start_up_with_one_line() -> None:
    env = {"OLLAMA_MAX_TOKENS": "lots", "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-m", "server"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "OLLAMA_MAX_TOKENS" in lines[0]


def test_keys_file_comments_may_be_indented_or_follow_a_key(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(
        "# service keys\n"
        "   # indented comment, not a key\n"
        "\t# tab-indented comment\n"
        "alpha   # the billing job\n"
        "beta\t# the batch job\n"
        "gam#ma\n"
        "  delta  \n"
    )
    s = Settings.from_env({"LLM_API_KEYS_FILE": str(path)})
    assert s.api_keys == ("alpha", "beta", "gam#ma", "delta")


def test_keys_file_with_two_words_on_a_line_names_the_line_not_the_key(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("alpha\nsecret-one secret-two\n")
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"LLM_API_KEYS_FILE": str(path)})
    assert "LLM_API_KEYS_FILE" in str(err.value) and "line 2" in str(err.value)
    assert "secret" not in str(err.value)


def test_ollama_base_url_and_upstreams_together() -> None:
    """Compose sets OLLAMA_BASE_URL; LLM_UPSTREAMS adds engines beside its Ollama hosts."""
    settings = Settings.from_env(
        {
            "OLLAMA_BASE_URL": "http://ollama:11434",
            "LLM_UPSTREAMS": "vllm=openai+http://vllm-engine:8000",
            "LLM_UPSTREAM_VLLM_API_KEY": "token",
        }
    )
    assert [(u.name, u.kind, u.urls) for u in settings.upstreams] == [
        ("ollama", "ollama", ("http://ollama:11434",)),
        ("vllm", "openai", ("http://vllm-engine:8000",)),
    ]
    assert settings.upstreams[1].api_key == "token"
    for upstreams, clash in (
        ("ollama=ollama+http://other:11434", "names an upstream 'ollama'"),
        ("more=ollama+http://ollama:11434", "listed in LLM_UPSTREAMS too"),
    ):
        with pytest.raises(ConfigError, match=clash):
            Settings.from_env(
                {"OLLAMA_BASE_URL": "http://ollama:11434", "LLM_UPSTREAMS": upstreams}
            )
