# The Python face of a log sink (pylog.c): an io.TextIOBase (isatty() False,
# fileno() raising io.UnsupportedOperation, writable(), ...) whose write and
# flush are the sink's own methods, with no Python frame in between.
import io
import sys


class ErlangLogStream(io.TextIOBase):
    '''sys.stdout / sys.stderr: lines go to the Erlang logger.'''
    encoding = 'utf-8'
    errors = 'strict'
    line_buffering = True

    def __init__(self, sink, name):
        self.write = sink.write
        self.flush = sink.flush
        self._name = name

    @property
    def name(self):
        return self._name

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        raise io.UnsupportedOperation(f'{self._name} goes to the Erlang logger: no file descriptor')

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def close(self):
        self.flush()  # stays open: print() must keep working

    def __repr__(self):
        return f'<erlang log stream {self._name}>'


def _install(out, err):
    sys.stdout = ErlangLogStream(out, '<stdout>')
    sys.stderr = ErlangLogStream(err, '<stderr>')
