package arena_test

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/offheap/offheap/arena"
)

// ExampleNewBudget puts the Go heap and an off-heap heap under one
// 256 MiB budget: the Go memory limit follows offheap's growth, and
// offheap is refused once it would take what the Go runtime uses.
func ExampleNewBudget() {
	b, err := arena.NewBudget(256<<20, arena.BudgetOptions{})
	if err != nil {
		panic(err)
	}
	defer b.Close() // restores the Go memory limit found by NewBudget

	h, err := arena.NewHeap(arena.Config{Budget: b, Reserve: 512 << 20})
	if err != nil {
		panic(err)
	}
	defer h.Close()

	// 64 MiB of Go data, live to the end.
	goData := make([][]byte, 64)
	for i := range goData {
		goData[i] = make([]byte, 1<<20)
		goData[i][0] = 1
	}

	// Offheap takes 1 MiB objects until the budget refuses one.
	n := 0
	for ; n < 256; n++ {
		if _, err := h.Alloc(1 << 20); err != nil {
			fmt.Println("refused:", errors.Is(err, arena.ErrOutOfMemory))
			break
		}
	}
	st := b.Stats()
	fmt.Println("offheap got less than the budget less Go's data:", n < 256-64)
	fmt.Println("together within the budget:", st.Committed+st.GoMemory <= st.Budget)
	fmt.Println("Go limit is the budget's:", debug.SetMemoryLimit(-1) == int64(st.GoLimit))
	fmt.Println("Go limit below budget - offheap:", st.GoLimit <= st.Budget-st.Committed)
	_ = goData[0][0]
	// Output:
	// refused: true
	// offheap got less than the budget less Go's data: true
	// together within the budget: true
	// Go limit is the budget's: true
	// Go limit below budget - offheap: true
}
