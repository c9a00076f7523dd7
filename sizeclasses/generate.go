package sizeclasses

//go:generate go run mkclasses.go -o table.go
