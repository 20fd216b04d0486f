"""Versioned changes to the CIB: typed patches, ``apply``, ``diff`` and the configuration digest.

A patch is what the replicated log carries. It addresses elements by *path*: a ``/``-separated walk from the
CIB root through field names, where a list of elements with ids is entered by id
(``/configuration/resources/websvc/children/web``), any other list by ``#index``, and a mapping by key
(``/configuration/properties/cib-bootstrap-options/values/stonith-enabled``).

Versions follow Pacemaker: a change to the configuration increments ``epoch`` and resets ``num_updates``;
a change to status only increments ``num_updates``; ``admin_epoch`` changes only when an operator sets it.
A patch may carry a precondition (the version it was computed against): applying it to any other version
fails with ``PatchConflict``, which is how two operators are kept from overwriting each other.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import msgspec

from hakeeper.cib.model import Cib, Configuration


class Version(msgspec.Struct, frozen=True, order=True):
    admin_epoch: int
    epoch: int
    num_updates: int

    def __str__(self) -> str:
        return f"{self.admin_epoch}.{self.epoch}.{self.num_updates}"


class Create(msgspec.Struct, frozen=True, tag="create", tag_field="op"):
    """Insert ``value`` into the list or mapping at ``path`` (at ``index`` for lists; appended if None)."""

    path: str
    value: Any
    key: str | None = None  # for mappings: the key to set
    index: int | None = None


class Modify(msgspec.Struct, frozen=True, tag="modify", tag_field="op"):
    """Set fields of the element at ``path``; a field set to ``None`` returns to its default."""

    path: str
    changes: dict[str, Any]


class Delete(msgspec.Struct, frozen=True, tag="delete", tag_field="op"):
    """Remove the element (or mapping key) at ``path``."""

    path: str


class Put(msgspec.Struct, frozen=True, tag="put", tag_field="op"):
    """Set the element with ``value``'s id in the list at ``path``: replace it, or append it if absent.

    With ``keep_existing`` an element already present is left as it is (an "ensure"). Idempotent, which is
    what recording status (operation results, attributes) wants: the same result twice is one record.
    """

    path: str
    value: Any
    keep_existing: bool = False


PatchOp = Create | Modify | Delete | Put


class Patch(msgspec.Struct, frozen=True):
    ops: list[PatchOp]
    precondition: Version | None = None
    admin_epoch: int | None = None  # an operator's explicit admin_epoch, if any


class PatchError(ValueError):
    """The patch cannot be applied: a path that does not exist, a value of the wrong shape, ..."""


class PatchConflict(PatchError):
    """The patch was made against another version of the CIB."""

    def __init__(self, expected: Version, actual: Version) -> None:
        super().__init__(
            f"the CIB changed since this change was prepared (prepared against version {expected}, "
            f"now at {actual}); read the current configuration and try again"
        )
        self.expected = expected
        self.actual = actual


def version_of(cib: Cib) -> Version:
    return Version(cib.admin_epoch, cib.epoch, cib.num_updates)


def config_digest(cfg: Configuration) -> str:
    """A stable digest of the configuration: equal configurations, equal digests (sha256, hex)."""
    return hashlib.sha256(msgspec.json.encode(cfg)).hexdigest()


# --- navigation over the builtins form ---------------------------------------------------------------


def _split(path: str) -> list[str]:
    if not path.startswith("/"):
        raise PatchError(f"path {path!r} must start with '/'")
    return [seg for seg in path.split("/")[1:] if seg != ""]


def _child_index(items: list[Any], seg: str, path: str) -> int:
    if seg.startswith("#"):
        try:
            idx = int(seg[1:])
        except ValueError as err:
            raise PatchError(f"{path}: {seg!r} is not a list position (use #0, #1, ...)") from err
        if not 0 <= idx < len(items):
            raise PatchError(f"{path}: there is no element at position {idx}")
        return idx
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("id") == seg:
            return i
    raise PatchError(f"{path}: no element with id {seg!r}")


def _step(node: Any, seg: str, path: str) -> Any:
    if isinstance(node, list):
        return node[_child_index(node, seg, path)]
    if isinstance(node, dict):
        if seg not in node:
            raise PatchError(f"{path}: {seg!r} does not exist here")
        return node[seg]
    raise PatchError(f"{path}: cannot descend into a plain value at {seg!r}")


def _walk_copy(root: dict[str, Any], segs: list[str], path: str, leaf: type = dict) -> Any:
    """Copy the containers along ``segs`` (copy-on-write) and return the last one.

    Empty fields are omitted from the builtins form, so a missing step is created: an element (a mapping)
    on the way, and a ``leaf`` container (list or mapping) at the end.
    """
    node: Any = root
    for n, seg in enumerate(segs):
        if isinstance(node, list):
            idx = _child_index(node, seg, path)
            node[idx] = copy.copy(node[idx])
            node = node[idx]
        elif isinstance(node, dict):
            if seg not in node:
                node[seg] = leaf() if n == len(segs) - 1 else {}
            node[seg] = copy.copy(node[seg])
            node = node[seg]
        else:
            raise PatchError(f"{path}: cannot descend into a plain value at {seg!r}")
    return node


def _apply_op(root: dict[str, Any], op: PatchOp) -> None:
    segs = _split(op.path)
    if isinstance(op, Create):
        target = _walk_copy(root, segs, op.path, list if op.key is None else dict)
        if isinstance(target, list):
            pos = len(target) if op.index is None else op.index
            if not 0 <= pos <= len(target):
                raise PatchError(f"{op.path}: position {pos} is outside the list")
            value_id = op.value.get("id") if isinstance(op.value, dict) else None
            if value_id is not None and any(isinstance(x, dict) and x.get("id") == value_id for x in target):
                raise PatchError(f"{op.path}: an element with id {value_id!r} already exists")
            target.insert(pos, op.value)
        elif isinstance(target, dict):
            if op.key is None:
                raise PatchError(f"{op.path}: creating in a mapping needs a key")
            target[op.key] = op.value
        else:
            raise PatchError(f"{op.path}: is not a list or mapping")
    elif isinstance(op, Put):
        _put(root, segs, op)
    elif isinstance(op, Modify):
        target = _walk_copy(root, segs, op.path)
        if not isinstance(target, dict):
            raise PatchError(f"{op.path}: only elements can be modified")
        for key, value in op.changes.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    else:
        if not segs:
            raise PatchError("the CIB root cannot be deleted")
        parent = _walk_copy(root, segs[:-1], op.path)
        last = segs[-1]
        if isinstance(parent, list):
            del parent[_child_index(parent, last, op.path)]
        elif isinstance(parent, dict):
            if last not in parent:
                raise PatchError(f"{op.path}: {last!r} does not exist")
            del parent[last]
        else:
            raise PatchError(f"{op.path}: is not inside a list or mapping")


def _put(root: dict[str, Any], segs: list[str], op: Put) -> None:
    target = _walk_copy(root, segs, op.path, list)
    if not isinstance(target, list):
        raise PatchError(f"{op.path}: is not a list")
    value_id = op.value.get("id") if isinstance(op.value, dict) else None
    if value_id is None:
        raise PatchError(f"{op.path}: put needs an element with an id")
    for i, item in enumerate(target):
        if isinstance(item, dict) and item.get("id") == value_id:
            if not op.keep_existing:
                target[i] = op.value
            return
    target.append(op.value)


def _touches_configuration(op: PatchOp) -> bool:
    return op.path.startswith("/configuration") or op.path == "/"


def apply(cib: Cib, patch: Patch) -> Cib:
    """Apply ``patch`` and return the new CIB with its version advanced. The input is never modified."""
    current = version_of(cib)
    if patch.precondition is not None and patch.precondition != current:
        raise PatchConflict(patch.precondition, current)
    root: dict[str, Any] = msgspec.to_builtins(cib)
    for op in patch.ops:
        _apply_op(root, op)
    for name in ("admin_epoch", "epoch", "num_updates"):
        root.pop(name, None)
    try:
        new = msgspec.convert(root, Cib)
    except msgspec.ValidationError as err:
        raise PatchError(f"the change would make the CIB invalid: {err}") from err
    if any(_touches_configuration(op) for op in patch.ops) or patch.admin_epoch is not None:
        admin = cib.admin_epoch if patch.admin_epoch is None else patch.admin_epoch
        return msgspec.structs.replace(new, admin_epoch=admin, epoch=cib.epoch + 1, num_updates=0)
    if patch.ops:
        return msgspec.structs.replace(
            new, admin_epoch=cib.admin_epoch, epoch=cib.epoch, num_updates=cib.num_updates + 1
        )
    return cib


# --- diff ----------------------------------------------------------------------------------------------


def _is_id_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, dict) and "id" in x for x in value)


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [str(x["id"]) for x in items]


def _diff_list(path: str, old: list[Any], new: list[Any], out: list[PatchOp]) -> bool:
    """Diff two id-keyed lists in place; False if the caller must replace the whole list."""
    if not (_is_id_list(old) and _is_id_list(new)):
        return False
    old_ids, new_ids = _ids(old), _ids(new)
    if len(set(old_ids)) != len(old_ids) or len(set(new_ids)) != len(new_ids):
        return False
    kept = [i for i in old_ids if i in set(new_ids)]
    if kept != [i for i in new_ids if i in set(old_ids)]:
        return False  # reordered: replace the list
    by_old = dict(zip(old_ids, old, strict=True))
    for rid in old_ids:
        if rid not in set(new_ids):
            out.append(Delete(path=f"{path}/{rid}"))
    for pos, (rid, item) in enumerate(zip(new_ids, new, strict=True)):
        if rid not in by_old:
            out.append(Create(path=path, value=item, index=pos))
        elif by_old[rid].get("element") != item.get("element"):
            out.append(Delete(path=f"{path}/{rid}"))
            out.append(Create(path=path, value=item, index=pos))
        else:
            _diff_obj(f"{path}/{rid}", by_old[rid], item, out)
    return True


def _diff_obj(path: str, old: dict[str, Any], new: dict[str, Any], out: list[PatchOp]) -> None:
    changes: dict[str, Any] = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        sub = f"{path}/{key}"
        if isinstance(a, dict) and isinstance(b, dict) and a.get("element") == b.get("element"):
            _diff_obj(sub, a, b, out)
        elif isinstance(a, list) and isinstance(b, list) and _diff_list(sub, a, b, out):
            continue
        else:
            changes[key] = b
    if changes:
        out.append(Modify(path=path or "/", changes=changes))


def diff(old: Cib, new: Cib) -> Patch:
    """A patch that turns ``old`` into ``new`` (up to versions), with ``old``'s version as precondition."""
    a: dict[str, Any] = msgspec.to_builtins(old)
    b: dict[str, Any] = msgspec.to_builtins(new)
    for d in (a, b):
        for name in ("admin_epoch", "epoch", "num_updates"):
            d.pop(name, None)
    ops: list[PatchOp] = []
    _diff_obj("", a, b, ops)
    return Patch(ops=ops, precondition=version_of(old))
