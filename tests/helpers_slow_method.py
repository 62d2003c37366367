"""Run eval.run with one extra method registered in-process: `slow`, the reference clip after a pause
(long enough to kill the run between items; $SLOW_METHOD_S seconds, default 0.4)."""

import os
import sys
import time

import eval.methods as methods
from eval.run import main


class SlowMethod(methods.ReferenceMethod):
    name = "slow"

    def generate(self, state, prompt, seed):
        time.sleep(float(os.environ.get("SLOW_METHOD_S", "0.4")))
        return state


methods.BUILTIN["slow"] = SlowMethod
main(sys.argv[1:])
