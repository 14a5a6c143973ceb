"""Configuration files for the command line: option values and generator parameters in TOML or JSON.

A file names any option of the command it is given to, by its long name with underscores, and
may hold a ``[params]`` table of keyword arguments for the generator::

    # fit.toml — synthaug fit images/ -o model.synthaug --config fit.toml
    model = "gan"
    epochs = 200
    resize = "64x64"

    [params]            # synthaug.GAN(latent_dim=32, learning_rate=2e-4, ...)
    latent_dim = 32
    learning_rate = 2e-4

Options given on the command line win over the file; the file wins over the defaults (click's
``default_map``). Unknown options and malformed files are usage errors that say what is wrong.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

PARAMS_TABLE = "params"


def read_config(path) -> dict:
    """Parse a ``.toml`` or ``.json`` configuration file into a dict.

    Raises
    ------
    ValueError
        If the file cannot be parsed, its top level is not a table, or its suffix is neither.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            with path.open("rb") as fh:
                config = tomllib.load(fh)
        elif suffix == ".json":
            config = json.loads(path.read_text(encoding="utf-8"))
        else:
            raise ValueError(f"{path}: a configuration file must be .toml or .json, not {suffix or 'no suffix'!r}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the configuration ({exc})") from None
    except Exception as exc:  # tomllib.TOMLDecodeError, without importing it up front
        if type(exc).__name__ != "TOMLDecodeError":
            raise
        raise ValueError(f"{path}: invalid TOML ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the configuration must be a table of options, not a {type(config).__name__}")
    params = config.get(PARAMS_TABLE, {})
    if not isinstance(params, dict):
        raise ValueError(f"{path}: [{PARAMS_TABLE}] must be a table of generator parameters")
    return config


def _load_into_context(ctx: click.Context, param: click.Parameter, value):
    if value is None:
        return None
    try:
        config = read_config(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    # A key is the option's long name with underscores (--json: json, --latent-dim: latent_dim);
    # the Python parameter name (as_json) is accepted too.
    spelled, options = {}, {}
    for p in ctx.command.params:
        if isinstance(p, click.Option) and p.name != param.name:
            long_names = [o for o in p.opts if o.startswith("--")]
            key = long_names[0][2:].replace("-", "_") if long_names else p.name
            spelled[key] = options[key] = options[p.name] = p.name
    unknown = sorted(set(config) - set(options) - {PARAMS_TABLE})
    if unknown:
        raise click.BadParameter(f"{value}: unknown option(s) {', '.join(unknown)} for "
                                 f"'{ctx.command_path}'; known: {', '.join(sorted(spelled))}", ctx=ctx, param=param)
    ctx.default_map = {**(ctx.default_map or {}),
                       **{options[k]: v for k, v in config.items() if k != PARAMS_TABLE}}
    ctx.meta["synthaug.params"] = dict(config.get(PARAMS_TABLE, {}))
    return value


def config_option(command):
    """Decorator: a ``--config FILE`` option that fills the command's other options from FILE."""
    return click.option(
        "--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), is_eager=True,
        expose_value=False, callback=_load_into_context,
        help="TOML or JSON file of option values (long names with underscores) and a [params] table "
             "of generator parameters; command-line options win.")(command)


def config_params(ctx: click.Context | None = None) -> dict:
    """The ``[params]`` table of the ``--config`` file given to the current command ({} if none)."""
    ctx = ctx or click.get_current_context()
    return dict(ctx.meta.get("synthaug.params", {}))
