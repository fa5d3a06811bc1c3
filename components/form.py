"""Forms generated from a run config's fields (labs/config.py): one widget per field, chosen from its type,
choices and limits; its help as the widget's info line; values back into the config; YAML and command preview.

    form = Form(SFTRunConfig, exclude=("model",), dynamic={"dataset": dataset_choices})
    widgets = form.render(preset("instruction"))     # the up-front fields, then "Advanced settings" by group
    cfg = form.config(values, model=spec)            # ConfigError names the field
    form.values(cfg)                                 # what the widgets show for a config (a preset, a run's)

A field added to a config's dataclass appears in its form (and on its CLI, labs/recipe.py) with no UI edit:
fields marked `advanced` go under "Advanced settings", grouped by their `group`; the others stand up front.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import gradio as gr

from labs.config import ConfigError, RunConfig, Spec


class Controls(NamedTuple):
    """Start and "Copy config as YAML / command", the message line and the two previews, under a form."""
    start: gr.Button
    yaml: gr.Button
    message: gr.Markdown
    yaml_box: gr.Code
    command_box: gr.Textbox


class Form:
    def __init__(self, config_cls: type[RunConfig], exclude: tuple[str, ...] = (),
                 dynamic: dict[str, Callable[[], list]] | None = None):
        """exclude: fields the panel supplies itself (the header's model); dynamic: fields whose choices are
        read when the page loads (saved datasets), offered but not enforced."""
        self.cls = config_cls
        self.specs: list[Spec] = [s for s in config_cls.specs() if s.form and s.name not in exclude]
        self.names = [s.name for s in self.specs]  # the order of the widgets, of the values, of the API's inputs
        self.dynamic = dynamic or {}
        self.widgets: dict[str, gr.components.Component] = {}

    # ------------------------------------------------------------------ widgets
    def widget(self, spec: Spec, value):
        label, info = spec.label, spec.help
        if spec.name in self.dynamic or spec.widget == "dataset":
            options = [*dict.fromkeys([str(value), *self.dynamic.get(spec.name, list)()])]
            return gr.Dropdown(options, value=value, label=label, info=info, allow_custom_value=True)
        if spec.widget == "multiselect":
            return gr.Dropdown(list(spec.options or ()), value=self._show(spec, value), multiselect=True,
                               label=label, info=info, allow_custom_value=True)
        if spec.choices is not None:
            shown = [((spec.choice_labels or {}).get(c, c), c) for c in spec.choices]
            kind = gr.Radio if spec.widget == "radio" else gr.Dropdown
            return kind(shown, value=value, label=label, info=info)
        if spec.type == "bool":
            return gr.Checkbox(value=value, label=label, info=info)
        if spec.type in ("int", "float"):
            info = f"{info} ({spec.limits_text()})" if spec.limits_text() else info
            if spec.widget == "slider" and spec.min is not None and spec.max is not None:
                step = spec.step or (1 if spec.type == "int" else (spec.max - spec.min) / 100)
                return gr.Slider(spec.min, spec.max, value=value, step=step, label=label, info=info)
            return gr.Number(value=value, precision=0 if spec.type == "int" else None, label=label, info=info)
        if spec.type == "list":
            lines = spec.widget == "textarea"
            return gr.Textbox(value=self._show(spec, value), lines=4 if lines else 1, label=label, info=info)
        return gr.Textbox(value=value, label=label, info=info)

    def render(self, cfg: RunConfig, advanced_open: bool = False, per_row: int = 0) -> list:
        """Build the widgets inside the current Blocks: the up-front fields in one row (or rows of `per_row`),
        then the advanced ones in an accordion, a titled row per group (in the order the config declares them)."""
        simple = [s for s in self.specs if not s.advanced]
        advanced = [s for s in self.specs if s.advanced]
        size = per_row or len(simple) or 1
        for i in range(0, len(simple), size):
            with gr.Row(equal_height=False):
                for s in simple[i:i + size]:
                    self.widgets[s.name] = self.widget(s, getattr(cfg, s.name))
        if advanced:
            with gr.Accordion("Advanced settings", open=advanced_open):
                for group in dict.fromkeys(s.group for s in advanced):
                    gr.Markdown(f"**{group or 'Other'}**")
                    with gr.Row(equal_height=False):
                        for s in (x for x in advanced if x.group == group):
                            self.widgets[s.name] = self.widget(s, getattr(cfg, s.name))
        return self.components

    def preset_picker(self, default: str, label: str = "Preset") -> tuple[gr.Dropdown, gr.Markdown]:
        """The config's presets (assets/presets/<recipe>/) and the chosen one's note."""
        with gr.Row():
            picker = gr.Dropdown(self.cls.preset_names(), value=default, label=label, scale=1)
            note = gr.Markdown(self.preset_note(default))
        return picker, note

    def preset_note(self, name: str) -> str:
        return f"Preset **{name}**: {self.cls.preset_about(name)}"

    def apply_preset(self, name: str) -> list:
        """The widgets' values for a preset, then its note (outputs: [*components, note])."""
        return [*self.values(self.cls.preset(name)), self.preset_note(name)]

    @staticmethod
    def controls(start_label: str = "Start training") -> Controls:
        with gr.Row():
            start = gr.Button(start_label, variant="primary")
            yaml_btn = gr.Button("Copy config as YAML / command")
        message = gr.Markdown()
        with gr.Row():
            yaml_box = gr.Code(language="yaml", label="run.yaml", interactive=False)
            command_box = gr.Textbox(label="Command", buttons=["copy"], interactive=False)
        return Controls(start, yaml_btn, message, yaml_box, command_box)

    @property
    def components(self) -> list:
        return [self.widgets[n] for n in self.names]

    def refresh(self) -> list:
        """Updates for the dynamic fields' choices (on page load: a dataset saved since start-up is there)."""
        ups = [gr.update(choices=[*dict.fromkeys(self.dynamic[n]())]) for n in self.dynamic if n in self.widgets]
        return ups[0] if len(ups) == 1 else ups  # one output takes the update itself, not a list of one

    @property
    def dynamic_components(self) -> list:
        return [self.widgets[n] for n in self.dynamic if n in self.widgets]

    # ------------------------------------------------------------------ values
    @staticmethod
    def _show(spec: Spec, value):
        """A config value as its widget holds it (a multiselect a list, a list field text)."""
        if spec.widget == "multiselect":
            return [t.strip() for t in str(value).split(",") if t.strip()] or list(spec.options or ())[:1]
        if spec.type == "list":
            return ("\n" if spec.widget == "textarea" else ", ").join(value or [])
        return value

    def values(self, cfg: RunConfig) -> list:
        return [self._show(s, getattr(cfg, s.name)) for s in self.specs]

    def as_dict(self, values) -> dict:
        values = list(values)
        if len(values) != len(self.names):
            raise ConfigError(f"form: expected {len(self.names)} values ({', '.join(self.names)}), got {len(values)}")
        d = dict(zip(self.names, values))
        for s in self.specs:
            if s.widget == "multiselect" and isinstance(d[s.name], (list, tuple)):
                d[s.name] = ",".join(str(x) for x in d[s.name])
        return d

    def config(self, values, **extra) -> RunConfig:
        """The config the widgets describe; `extra` fills the fields the panel supplies (the model)."""
        return self.cls.from_dict({**extra, **self.as_dict(values)}, where="form")

    def preview(self, values, **extra) -> tuple[str, str]:
        """(run.yaml, command) for the widgets' values, or ('# invalid: ...', '') with a warning."""
        try:
            cfg = self.config(values, **extra)
        except ConfigError as e:
            gr.Warning(str(e))
            return f"# invalid: {e}", ""
        return cfg.to_yaml(), cfg.command("run.yaml") + "   # save the YAML above as run.yaml first"
