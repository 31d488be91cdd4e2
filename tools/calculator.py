"""A calculator that evaluates arithmetic safely: the expression is parsed, never eval'd."""

import ast
import math
import operator

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {
    name: getattr(math, name)
    for name in (
        "sqrt",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "log",
        "log10",
        "log2",
        "exp",
        "floor",
        "ceil",
        "factorial",
        "degrees",
        "radians",
        "hypot",
    )
}
_FUNCTIONS.update(abs=abs, round=round, min=min, max=max)
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
_MAX_EXPONENT = 10_000
_MAX_FACTORIAL = 1_000
_MAX_DIGITS = 4_000  # Python refuses to print integers longer than 4,300 digits
_MAX_BITS = int(_MAX_DIGITS * 3.3219)


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression and return the result.

    Args:
        expression: The expression, e.g. "2 * (3 + 4) ** 2" or "sqrt(2) * pi". Supports
            + - * / // % **, parentheses, pi, e, tau and the functions sqrt, sin, cos, tan, asin,
            acos, atan, log, log10, log2, exp, floor, ceil, factorial, degrees, radians, hypot,
            abs, round, min and max.
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {exc.msg}") from None
    try:
        result = _evaluate(tree.body)
    except OverflowError:
        raise ValueError("the result is too large") from None
    if isinstance(result, float) and result.is_integer() and abs(result) < 1e15:
        return str(int(result))
    return str(result)


def _evaluate(node: ast.AST):
    if isinstance(node, ast.Constant):
        if type(node.value) in (int, float):
            return node.value
        raise ValueError(f"{node.value!r} is not a number")
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ValueError(f"unknown name '{node.id}'")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise ValueError(f"exponent {right} is too large (limit {_MAX_EXPONENT})")
        _check_size(node.op, left, right)
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)[:40]
        if name not in _FUNCTIONS:
            raise ValueError(f"unknown function '{name}'")
        if node.keywords:
            raise ValueError("keyword arguments are not supported")
        args = [_evaluate(arg) for arg in node.args]
        if name == "factorial" and args and args[0] > _MAX_FACTORIAL:
            raise ValueError(f"factorial argument is too large (limit {_MAX_FACTORIAL})")
        return _bounded(_FUNCTIONS[name](*args))
    if isinstance(node, ast.Attribute):
        raise ValueError("attribute access is not arithmetic")
    raise ValueError(f"'{ast.unparse(node)[:40]}' is not arithmetic")


def _check_size(op: ast.operator, left, right) -> None:
    """Refuse before computing a product or power whose result would pass the size bound."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return
    if isinstance(op, ast.Mult):
        bits = left.bit_length() + right.bit_length()
    elif isinstance(op, ast.Pow) and right > 0 and abs(left) > 1:
        bits = (left.bit_length() - 1) * right
    else:
        return
    if bits > _MAX_BITS:
        raise ValueError(f"the result would be too large (more than {_MAX_DIGITS:,} digits)")


def _bounded(value):
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise ValueError(f"the result is too large (more than {_MAX_DIGITS:,} digits)")
    return value
