"""Built-in cvbench plugins, registered through the `cvbench` entry-point group like any third-party package."""
