from pathlib import Path

import pytest
from airnub_core.config import ConfigError, Settings, Source, read_yaml, resolve_settings, validate


class Demo(Settings):
    message: str
    count: int = 1
    source: Source = "sample.json"


def test_yaml_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("a: 1\nb: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: invalid YAML"):
        read_yaml(path)


def test_a_non_mapping_file_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping, not list"):
        read_yaml(path)


def test_validation_errors_name_the_origin_and_key(demo_department):
    with pytest.raises(ConfigError) as error:
        validate(Demo, {"message": "hi", "count": "many", "extra": 1}, "f.yaml", demo_department)
    message = str(error.value)
    assert "f.yaml: count: Input should be a valid integer" in message
    assert "f.yaml: extra: Extra inputs are not permitted" in message


def test_relative_sources_resolve_against_the_department_package(demo_department):
    settings = validate(Demo, {"message": "hi"}, "f.yaml", demo_department)
    assert settings.source.startswith("file://")
    assert Path(settings.source.removeprefix("file://")).parent.name == demo_department
    remote = validate(Demo, {"message": "hi", "source": "https://x.org/a"}, "f", demo_department)
    assert remote.source == "https://x.org/a"


def test_resolve_reads_yaml_then_merges_parameters(demo_department):
    module = f"{demo_department}.ingestion.alpha.make_alpha_flow_{demo_department}"
    settings, origin = resolve_settings(Demo, module)
    assert settings.message == "hello from alpha"
    assert origin.endswith("configs/variables/ingestion/alpha.yaml")
    settings, origin = resolve_settings(Demo, module, {"count": 3})
    assert (settings.message, settings.count) == ("hello from alpha", 3)
    assert origin.endswith("+ flow parameters")


def test_missing_config_file(demo_department):
    module = f"{demo_department}.processing.nothing.make_nothing_flow_{demo_department}"
    with pytest.raises(ConfigError, match=r"processing/nothing.yaml: config file not found"):
        resolve_settings(Demo, module)
