"""Child processes of tests that interrupt them."""
import signal


def default_sigint():
    """``preexec_fn`` for a child that a test interrupts: SIGINT gets its default
    disposition back, so that Python turns it into KeyboardInterrupt even when the test
    run itself was started with SIGINT ignored (as a background job of a
    non-interactive shell is; children inherit an ignored signal)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
