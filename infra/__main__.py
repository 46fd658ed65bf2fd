"""fraudwatch on Kubernetes: `pulumi up --stack dev|prod` (see docs/operations/kubernetes.md).

The program itself is fraudwatch_infra.program.main (an Automation API inline program calls
the same function)."""

from fraudwatch_infra.program import main

main()
