import sys

from tests.rehearsal.standin_pulumi.cli import main

sys.exit(main(sys.argv[1:]))
