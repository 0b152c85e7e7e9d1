# Start-up code run in every interpreter, in a private namespace (interp.c):
# puts the configured paths first on sys.path and, on 3.12 sub-interpreters,
# makes decimal and datetime use their pure-Python versions (the C ones
# corrupt the heap there, PLATFORM.md).
import sys


def _boot(paths, guard):
    for p in reversed([p for p in paths.split('\n') if p]):
        if p not in sys.path:
            sys.path.insert(0, p)
    if guard:
        class _PureDecimalDatetime:
            @staticmethod
            def find_spec(name, path=None, target=None):
                if name in ('_decimal', '_datetime'):
                    raise ModuleNotFoundError(name, name=name)
                return None
        sys.meta_path.insert(0, _PureDecimalDatetime)
