module taskop.dev/executor

go 1.25
