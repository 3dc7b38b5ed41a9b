"""What a report becomes for people: tables, Markdown and JSON, diagrams and plots."""
