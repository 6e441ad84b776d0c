"""A cache prefetch hint for numba kernels, so graph walks can load the next rows early.

Graph searches read rows in a random order, so most distance computations wait for memory.
Asking for the rows of all new neighbours before computing any distance overlaps those waits.
"""

from __future__ import annotations

import numba as nb
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

# A cache line of 64 bytes contains 16 float32 elements.
_LINE_ELEMENTS = 16


@intrinsic
def _prefetch_element(typingctx, array, row, column):
    """Emit ``llvm.prefetch`` (read, high locality) for the address of ``array[row, column]``."""
    if not isinstance(array, types.Array) or array.ndim != 2:
        return None
    signature = types.void(array, types.intp, types.intp)

    def codegen(context, builder, sig, args):
        array_type = sig.args[0]
        values, row_value, column_value = args
        view = context.make_array(array_type)(context, builder, values)
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, view, [row_value, column_value], wraparound=False
        )
        byte_pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())
        int32 = ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [byte_pointer.type, int32, int32, int32])
        function = cgutils.get_or_insert_function(builder.module, function_type, "llvm.prefetch.p0")
        builder.call(
            function,
            [byte_pointer, ir.Constant(int32, 0), ir.Constant(int32, 3), ir.Constant(int32, 1)],
        )
        return context.get_dummy_value()

    return signature, codegen


@nb.njit(cache=True)
def prefetch_row(xb, row) -> None:
    """Hint the CPU to load row ``row`` of the C-contiguous float32 matrix ``xb`` into cache."""
    for column in range(0, xb.shape[1], _LINE_ELEMENTS):
        _prefetch_element(xb, row, column)
