"""Names a layer cannot take, because generated code or torch's modules already use them."""

from __future__ import annotations

import keyword
import re

#: A layer name: letters, digits and _, with single hyphens between them, as torch's module
#: names allow (torchvision's RegNet names its blocks `block1-0`); never a dot, which nests.
LAYER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*")

#: Attributes of `nn.Module`, `fx.GraphModule` and `nn.ModuleDict` (torch 2.13), of the compiled
#: network and of the class in generated source. A layer is an attribute of the module holding it,
#: so a layer named `forward` or `float` would replace a method; a test keeps this list complete.
MODULE_ATTRIBUTES = frozenset(
    {
        *("T_destination", "add_module", "add_submodule", "apply", "bfloat16", "buffers"),
        *("call_super_init", "children", "clear", "code", "compile", "cpu", "cuda"),
        *("delete_all_unused_submodules", "delete_submodule", "double", "dump_patches", "eval"),
        *("extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter"),
        *("get_submodule", "graph", "half", "ipu", "items", "keys", "load_state_dict", "meta"),
        *("modules", "mtia", "named_buffers", "named_children", "named_modules"),
        *("named_parameters", "parameters", "pop", "print_readable", "recompile"),
        *("register_backward_hook", "register_buffer", "register_forward_hook"),
        *("register_forward_pre_hook", "register_full_backward_hook"),
        *("register_full_backward_pre_hook", "register_load_state_dict_post_hook"),
        *("register_load_state_dict_pre_hook", "register_module", "register_parameter"),
        *("register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_"),
        *("set_extra_state", "set_submodule", "shape_env", "share_memory", "state_dict", "to"),
        *("to_empty", "to_folder", "train", "training", "type", "update", "values", "xpu"),
        *("zero_grad", "weights_report", "frozen_norms", "FROZEN", "FROZEN_NORMS"),
    }
)


def layer_name_problem(name: str) -> str | None:
    """Why `name` cannot name a layer, or None when it can."""
    if not LAYER_NAME.fullmatch(name):
        return (
            f"{name!r} is not a layer name: letters, digits and _, with single hyphens between "
            "them (block1-0), starting with a letter or _"
        )
    if keyword.iskeyword(name):
        return f"{name!r} is a Python keyword; choose another name"
    if name == "self":
        return "'self' names the module itself in generated code; choose another name"
    if name.startswith("_"):
        return f"{name!r} starts with '_', which torch reserves for a module's internals"
    if name in MODULE_ATTRIBUTES:
        return (
            f"{name!r} is an attribute of torch's nn.Module (a layer becomes an attribute of "
            "the module holding it); choose another name"
        )
    return None
