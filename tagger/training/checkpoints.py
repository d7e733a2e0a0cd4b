"""A training run's checkpoints, in one format for every Keras backend.

`<name>.npz` (NumPy's zip of arrays, written whole or not at all): the
values of the model's variables (`model.variables`: trainable, the other
weights and the dropout layers' seed-generator states), in order, as
`model/00000`, ...; with an optimizer, its variables (iteration count,
learning rate, slots) as `optimizer/00000`, ...; and each group's variable
paths, in the same order, as `paths/model` and `paths/optimizer`.
Variables are matched by position and checked by path and shape: a
variable whose path or shape is not the checkpoint's is a CheckpointMismatch
naming the first, so a model whose variables of equal shapes come in
another order (another Keras, changed code) is refused, not given each
other's values. The paths are Keras's with its per-process numbering
taken out (`stable_paths`: `dense_7` is the model's first Dense layer
again), so the same model built in two processes, after other models or
not, has the same paths; an optimizer's slots are named after the
model variable they belong to. Checkpoints of earlier versions hold no
paths: they are read by position and shape, as they were written. A
checkpoint written under TensorFlow continues under JAX and the other way
round.

Runs started before this format wrote TensorFlow checkpoints
(`<name>.index` and `<name>.data-*`); `is_tensorflow_format` finds them,
and the TensorFlow backend reads them (`backend_tf.read_tensorflow_checkpoint`).
"""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np

from tagger import fileio
from tagger.errors import UserError

SUFFIX = ".npz"
PATHS = "paths"  # the group of the variables' stable paths, one array a group
# what reading a damaged or mismatched checkpoint raises
READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


class CheckpointMismatch(ValueError):
    """A checkpoint whose variables are not those of the model (or
    optimizer) it is read into."""


def path_of(prefix: str) -> str:
    """The file of the checkpoint `prefix` (a folder and its name)."""
    return prefix + SUFFIX


def exists(prefix: str) -> bool:
    return fileio.exists(path_of(prefix))


def is_tensorflow_format(prefix: str) -> bool:
    """Whether `prefix` names a checkpoint in TensorFlow's format (written
    before this one) and none in this format."""
    return not exists(prefix) and fileio.exists(prefix + ".index")


def write(prefix: str, model, optimizer=None) -> None:
    """Writes the checkpoint of `model` (and `optimizer`) at `prefix`."""
    arrays = {}
    for group, variables, paths in _groups(model, optimizer):
        for index, variable in enumerate(variables):
            arrays[f"{group}/{index:05d}"] = _value(variable)
        arrays[f"{PATHS}/{group}"] = np.array(paths, dtype=str)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    fileio.makedirs(prefix.rsplit("/", 1)[0])  # a worker's scratch folder, made at its first
    fileio.write_atomic(path_of(prefix), buffer.getvalue())


def read(prefix: str, model, optimizer=None) -> None:
    """Assigns the values of the checkpoint at `prefix` to `model`'s
    variables (and `optimizer`'s, which must be built); a checkpoint
    without an optimizer's variables cannot restore one. A
    CheckpointMismatch when the variables do not fit (by path, where the
    checkpoint holds them, and shape); one of READ_ERRORS for a damaged
    file (`damage` tells which)."""
    with np.load(io.BytesIO(fileio.read_bytes(path_of(prefix)))) as saved:
        stored = {name: saved[name] for name in saved.files}
    plan = []
    for group, variables, paths in _groups(model, optimizer):
        names = sorted(name for name in stored if name.startswith(group + "/"))
        if len(names) != len(variables):
            raise CheckpointMismatch(f"it holds {len(names)} {group} variables, the "
                                     f"{group} has {len(variables)}")
        saved_paths = stored.get(f"{PATHS}/{group}")  # None: written by an earlier version
        for index, (name, variable) in enumerate(zip(names, variables)):
            value = stored[name]
            if saved_paths is not None and str(saved_paths[index]) != paths[index]:
                raise CheckpointMismatch(f"its {group} variable {index} is "
                                         f"{str(saved_paths[index])!r}, the {group}'s is "
                                         f"{paths[index]!r}")
            if tuple(value.shape) != tuple(variable.shape):
                raise CheckpointMismatch(f"{group} variable {paths[index]} is "
                                         f"{tuple(variable.shape)}, the checkpoint's "
                                         f"{tuple(value.shape)}")
            plan.append((variable, value))
    for variable, value in plan:  # nothing is assigned unless everything fits
        variable.assign(value.astype(variable.dtype))


def damage(prefix: str) -> str | None:
    """None when the checkpoint at `prefix` reads back whole; else what is
    missing or damaged, naming the file."""
    path = path_of(prefix)
    if not fileio.exists(path):
        return f"checkpoint file {path!r} is missing"
    try:
        with zipfile.ZipFile(io.BytesIO(fileio.read_bytes(path))) as archive:
            bad = archive.testzip()
        if bad is not None:
            return f"checkpoint file {path!r} is damaged (its entry {bad} fails its CRC)"
        with np.load(io.BytesIO(fileio.read_bytes(path))) as saved:
            for name in saved.files:
                saved[name]
    except READ_ERRORS as error:
        return f"checkpoint file {path!r} is damaged ({str(error).splitlines()[0]})"
    return None


def remove(folder: str, names) -> None:
    """Deletes the checkpoints `names` of `folder`, in either format."""
    files = fileio.listdir(folder) if fileio.isdir(folder) else []
    for name in names:
        for file in files:
            if file.startswith(name + "."):
                fileio.remove_quietly(f"{folder}/{file}")


def copy(folder: str, name: str, new_name: str) -> None:
    """Copies the checkpoint `name` of `folder`, in either format, as `new_name`."""
    for file in fileio.listdir(folder):
        if file.startswith(name + "."):
            fileio.write_atomic(f"{folder}/{new_name}{file[len(name):]}",
                                fileio.read_bytes(f"{folder}/{file}"))


def names_in(folder: str) -> list:
    """The checkpoints found in `folder`, by name."""
    if not fileio.isdir(folder):
        return []
    return sorted({f.split(".")[0] for f in fileio.listdir(folder)})


def _groups(model, optimizer) -> list:
    """(group, its variables, their `stable_paths`) of the model and the optimizer."""
    variables = list(model.variables)
    model_paths = stable_paths([v.path for v in variables])
    groups = [("model", variables, model_paths)]
    if optimizer is not None:
        slots = optimizer_paths([v.name for v in optimizer.variables], variables, model_paths)
        groups.append(("optimizer", list(optimizer.variables), slots))
    return groups


NUMBERED = re.compile(r"(.*?)(?:_(\d+))?")  # a path part: Keras's name, its process's number


def stable_paths(paths: list[str]) -> list[str]:
    """`paths` (Keras variable paths, "/"-separated) with Keras's per-process
    numbering taken out: a part `name_N` (or `name`, N = 0) becomes `name`
    followed by its rank among the numbers of `name` in all of `paths`
    (`name` for the lowest, `name_1` for the next, ...), as a process that
    built only this model would name it."""
    parts = [[NUMBERED.fullmatch(part).groups() for part in path.split("/")]
             for path in paths]
    numbers = {}
    for path in parts:
        for name, number in path:
            numbers.setdefault(name, set()).add(int(number or 0))
    rank = {name: {n: i for i, n in enumerate(sorted(found))} for name, found in numbers.items()}
    return ["/".join(name if not rank[name][int(number or 0)] else
                     f"{name}_{rank[name][int(number or 0)]}" for name, number in path)
            for path in parts]


def optimizer_paths(names: list[str], variables: list, paths: list[str]) -> list[str]:
    """The stable paths of an optimizer's variables (`names`, its Keras
    variable names): a slot, named by Keras after the model variable it
    belongs to (`<its path with _ for />_momentum`), as that variable's
    stable path (of `variables`, `paths`) and the slot's name
    (`dense/kernel/momentum`); the others (iteration, learning_rate, ...)
    as `stable_paths` gives them."""
    owners = sorted(((v.path.replace("/", "_") + "_", path) for v, path in zip(variables, paths)),
                    key=lambda owner: -len(owner[0]))  # the longest prefix first
    found = []
    for name in names:
        owner = next(((prefix, path) for prefix, path in owners if name.startswith(prefix)),
                     None)
        found.append(f"{owner[1]}/{name[len(owner[0]):]}" if owner else None)
    own = iter(stable_paths([name for name, slot in zip(names, found) if slot is None]))
    return [slot if slot is not None else next(own) for slot in found]


def _value(variable) -> np.ndarray:
    """A variable's value as a NumPy array in a dtype NumPy files keep
    (bfloat16 as float32)."""
    import keras

    value = keras.ops.convert_to_numpy(variable.value)
    if value.dtype.name == "bfloat16":
        value = value.astype(np.float32)
    return value


def unreadable(prefix: str, error: Exception) -> UserError:
    """The UserError for a checkpoint that cannot be read into the run's model."""
    problem = damage(prefix)
    return damaged(problem) if problem else does_not_fit(path_of(prefix), error)


def damaged(problem: str) -> UserError:
    """The UserError for a checkpoint file that is missing or damaged (`problem`)."""
    return UserError(f"{problem}; the run cannot continue from it: start a new run with "
                     "--run-name (or restore the file)")


def does_not_fit(path: str, error: Exception) -> UserError:
    """The UserError for a whole checkpoint at `path` whose variables are
    not the model's."""
    return UserError(f"checkpoint {path!r} does not fit the model built for this dataset "
                     f"({str(error).splitlines()[0][:200]}); the run was trained with other "
                     "data or model settings: use a new --run-name")
