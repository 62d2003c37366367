"""Dashboard pages: each `render(runs, studies)` draws one page from run directories and human-study outputs."""
