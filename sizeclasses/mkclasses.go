//go:build ignore

// mkclasses writes table.go, the size-class table. Run it with go generate
// in this directory; the rules live in internal/classgen.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/offheap/offheap/sizeclasses/internal/classgen"
)

func main() {
	out := flag.String("o", "table.go", "output file")
	flag.Parse()
	src, err := classgen.Generate()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}
