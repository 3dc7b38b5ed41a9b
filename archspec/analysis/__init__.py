"""Static analysis: shapes, parameters, MACs, FLOPs and receptive field, without torch."""

from archspec.analysis.analyze import analyze
from archspec.analysis.folding import Row, fold
from archspec.analysis.receptive_field import Axis, ReceptiveField
from archspec.analysis.report import LayerReport, Report, Totals

__all__ = ["Axis", "LayerReport", "ReceptiveField", "Report", "Row", "Totals", "analyze", "fold"]
