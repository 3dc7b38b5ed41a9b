"""Walk a network in order: shapes, counts and receptive field of every layer, no torch."""

from __future__ import annotations

import collections
from collections.abc import Sequence

from archspec.analysis.receptive_field import ReceptiveField, merge, misalignment, stepped
from archspec.analysis.report import BYTES_PER_ELEMENT, LayerReport, Report, Totals
from archspec.errors import Diagnostic, ShapeError, SpecError, UsageError, fold_instances
from archspec.gcpause import paused_gc
from archspec.ir import INPUT, HasNetwork, Layer, Network, Origins, input_shape_problem, unwrap
from archspec.late import LateFieldError, resolve
from archspec.ops.base import MAX_DIM, Op, Shape, format_shape, numel
from archspec.ops.layouts import (
    LaidOut,
    describe,
    features_alike,
    laid_out,
    layout_of,
    position_sizes,
)

#: A layer holding more than this share of all parameters earns a warning.
DOMINANT_SHARE = 0.5


def analyze(
    subject: Network | HasNetwork,
    input_shape: Sequence[int] | None = None,
    origins: Origins | None = None,
) -> Report:
    """Static analysis of a network at `input_shape`, default its input: (F,), or (C, L),
    (C, H, W) or (C, T, H, W) with receptive fields along each of their spatial axes.

    `subject` is a `Network` or a loaded spec (anything with `.network` and `.origins`). Raises
    SpecError naming every layer whose shapes do not fit, positioned by `origins` (a loaded spec
    brings its own).
    """
    network, own_origins = unwrap(subject)
    origins = origins or own_origins
    shape = network.input if input_shape is None else _check_input_shape(input_shape)
    walk = _Walk(network, origins, shape)
    with paused_gc():
        for layer in network.in_order():
            walk.visit(layer)
        if walk.errors and len(shape) != len(network.input):
            # a network of features may take any rank; where one fails, the rank is the likely
            # mistake, said first, and the errors it led to follow
            rank = Diagnostic(
                f"the input shape {'x'.join(map(str, shape))} has {len(shape)} sizes, and the "
                f"spec's input {'x'.join(map(str, network.input))} has {len(network.input)}: "
                "give every size, the channels included; at the shape given:"
            )
            walk.errors.insert(0, rank)
        if walk.errors:
            raise SpecError.collect(walk.errors)
        return walk.report()


def _check_input_shape(shape: Sequence[int]) -> Shape:
    problem = input_shape_problem(shape)
    if problem:
        raise UsageError(problem)
    return tuple(shape)


class _Walk:
    def __init__(self, network: Network, origins: Origins, input_shape: Shape) -> None:
        self.network = network
        self.origins = origins
        self.input_shape = laid_out(input_shape, network.input_layout(len(input_shape)))
        self.shapes: dict[str, Shape] = {INPUT: self.input_shape}
        self.ops: dict[str, Op] = {}
        # (C, L), (C, H, W) and (C, T, H, W) have spatial axes after the channels; (F,) has none
        self.input_spatial = position_sizes(self.input_shape)
        self.fields: dict[str, ReceptiveField | None] = {
            INPUT: ReceptiveField.of_input(len(self.input_spatial)) if self.input_spatial else None
        }
        self.layers: list[LayerReport] = []
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []

    def note(self, layer: Layer, message: str, severity: str = "warning") -> None:
        position = self.origins.position(layer.origin)
        target = self.warnings if severity == "warning" else self.errors
        target.append(
            Diagnostic(
                f"layer {layer.name!r}: {message}",
                position,
                "warning" if severity == "warning" else "error",
            )
        )

    def visit(self, layer: Layer) -> None:
        if any(name not in self.shapes for name in layer.inputs):
            return  # an input failed already; its error is reported once, at its own layer
        inputs = [self.shapes[name] for name in layer.inputs]
        op = self._materialize(layer, inputs)
        if op is None:
            return
        problem = self._layout_problem(layer, op, inputs)
        if problem:
            self.note(layer, problem, "error")
            return
        try:
            output = op.output_shape(inputs)
        except ShapeError as error:
            self.note(layer, error.message + self._sources(layer), "error")
            return
        if any(dim > MAX_DIM for dim in output):
            self.note(layer, f"output shape {output} has a size above {MAX_DIM}", "error")
            return
        output = LaidOut(output, op.output_layout(inputs, output))
        self.shapes[layer.name] = output
        self.ops[layer.name] = op
        for message in op.warnings(inputs):
            self.note(layer, message)
        if len(set(layer.inputs)) < len(layer.inputs):  # rare: counted only then
            self._note_repeated_reads(layer)
        params = op.param_count(inputs)
        self.layers.append(
            LayerReport(
                name=layer.name,
                op=op,
                inputs=layer.inputs,
                input_shapes=tuple(inputs),
                frozen=layer.frozen,
                output_shape=output,
                params=params,
                trainable_params=0 if layer.frozen else params,
                macs=op.macs(inputs, output),
                flops=op.flops(inputs, output),
                activation_bytes=(numel(output) + op.working_elements(inputs, output))
                * BYTES_PER_ELEMENT,
                receptive_field=self._receptive_field(layer, op, inputs),
                origin=layer.origin,
            )
        )

    def _layout_problem(self, layer: Layer, op: Op, inputs: list[Shape]) -> str | None:
        """Why the op cannot take its inputs' layouts: one it does not take, or paths of two
        layouts meeting (a (C, H, W) and an (H, W, C) map of equal sizes add without error in
        torch, and wrongly)."""
        by_layout = {
            layout_of(shape): (name, shape)
            for name, shape in zip(layer.inputs, inputs, strict=True)
        }
        for _, shape in by_layout.values():
            problem = op.layout_problem(shape)
            if problem:
                return problem + self._sources(layer)
        # features flattened from a map (F) and features picked or pooled (C) are alike; paths
        # of different ranks are the op's shape rule's to explain
        same_rank = len({len(layout) for layout in by_layout}) == 1
        if same_rank and len({features_alike(layout) for layout in by_layout}) > 1:
            listed = " and ".join(
                f"{describe(layout)} from {name!r}" for layout, (name, _) in by_layout.items()
            )
            return f"{op.op} joins paths of different layouts: {listed}; permute one to match"
        return None

    def _note_repeated_reads(self, layer: Layer) -> None:
        for name, count in collections.Counter(layer.inputs).items():
            if count > 1:
                places = [str(index) for index, read in enumerate(layer.inputs) if read == name]
                self.note(
                    layer,
                    f"reads {name!r} as inputs {', '.join(places)}: an entry it names may have "
                    "been left out by `when`, leaving the one before it in its place",
                )

    def _sources(self, layer: Layer) -> str:
        """Where the inputs of a layer joining paths come from, and what the ops making them
        could change (an upsample that could take the other input's size)."""
        if len(set(layer.inputs)) < 2:
            return ""
        sources, advice = [], []
        for name in dict.fromkeys(layer.inputs):
            producer = self.ops.get(name)
            sources.append(f"{name!r} ({producer.op})" if producer else repr(name))
            tip = producer.mismatch_advice(name, layer.name) if producer else None
            if tip and tip not in advice:
                advice.append(tip)
        listed = ", ".join(sources[:-1]) + f" and {sources[-1]}"
        return f"; they come from {listed}" + "".join(f"; {tip}" for tip in advice)

    def _materialize(self, layer: Layer, inputs: list[Shape]) -> Op | None:
        """The layer's op; a pending one is resolved now that its input shape is known."""
        if isinstance(layer.op, Op):
            return layer.op
        context = f"layer {layer.name!r}: "
        try:
            return resolve(layer.op.op_name, layer.op.fields, inputs, context)
        except LateFieldError as error:
            for place, message in error.problems:
                field = str(place[0]) if place else None
                self.errors.append(Diagnostic(message, self.origins.position(layer.origin, field)))
            return None

    def _receptive_field(self, layer: Layer, op: Op, inputs: list[Shape]) -> ReceptiveField | None:
        incoming = [self.fields.get(name) for name in layer.inputs]
        if any(field is None for field in incoming):
            self.fields[layer.name] = None
            return None
        present = [field for field in incoming if field is not None]
        # compared after each input's step: a crop's shift or a shape-only input changes them
        fields = stepped(present, op.window(inputs), self.input_spatial)
        if not fields:  # every input read for its shape alone: a learned tensor
            self.fields[layer.name] = ReceptiveField.none(len(self.input_spatial))
            return self.fields[layer.name]
        if len(fields) > 1:
            labels = {
                index: f"{layer.inputs[index]!r} {format_shape(inputs[index])}" for index in fields
            }
            problem = misalignment({labels[index]: field for index, field in fields.items()})
            if problem:
                self.note(layer, f"{problem}; the larger receptive field is reported")
        field = merge(list(fields.values()))
        self.fields[layer.name] = field
        return field

    def report(self) -> Report:
        totals = Totals(
            params=sum(layer.params for layer in self.layers),
            trainable_params=sum(layer.trainable_params for layer in self.layers),
            macs=sum(layer.macs for layer in self.layers),
            flops=sum(layer.flops for layer in self.layers),
            activation_bytes=sum(layer.activation_bytes for layer in self.layers),
        )
        self._structural_warnings(totals)
        return Report(
            self.network.name,
            self.input_shape,
            tuple(self.layers),
            self.network.outputs,
            totals,
            tuple(fold_instances(self.warnings)),
            self.network.output_keys,
        )

    def _reads_a_flattened_map(self, report: LayerReport) -> bool:
        """Whether a layer of features reads a map of more than one position, flattened (VGG's
        classifier): only then would pooling first shrink it."""
        if len(report.output_shape) != 1:
            return False
        reports = {layer.name: layer for layer in self.layers}
        while True:  # up the features' path to where they left a map
            shape = report.input_shapes[0]
            if len(shape) > 1:  # a flatten keeps every position; a mean or a pooling does not
                return numel(shape[1:]) > 1 and numel(report.output_shape) == numel(shape)
            if report.inputs[0] == INPUT:
                return False
            report = reports[report.inputs[0]]

    def _structural_warnings(self, totals: Totals) -> None:
        network = self.network
        readers = network.readers
        for report in self.layers:
            layer = network.layer(report.name)
            if totals.params and report.params > DOMINANT_SHARE * totals.params:
                share = report.params / totals.params
                advice = "; a global pooling before the head would shrink it"
                self.note(
                    layer,
                    f"holds {share:.0%} of all parameters ({report.params:,} of "
                    f"{totals.params:,}){advice if self._reads_a_flattened_map(report) else ''}",
                )
            if readers[report.name] == 0 and report.name not in network.outputs:
                self.note(layer, "its output is never used (not read by a layer, not an output)")
