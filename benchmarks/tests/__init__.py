"""The benchmark suite's own tests (a package, so their module names never meet tests/')."""
