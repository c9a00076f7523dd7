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

// ExampleBudget_Stats reads what a Budget accounts for: its heaps'
// committed memory against the budget, and the Go memory limit it set.
func ExampleBudget_Stats() {
	b, err := arena.NewBudget(1<<30, arena.BudgetOptions{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	h, err := arena.NewHeap(arena.Config{Budget: b, Reserve: 256 << 20})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	if _, err := h.Alloc(4 << 20); err != nil {
		panic(err)
	}
	st := b.Stats()
	fmt.Println("heaps:", st.Heaps)
	fmt.Println("offheap committed at least 4 MiB:", st.Committed >= 4<<20)
	fmt.Println("Go limit leaves room for offheap:", st.GoLimit <= st.Budget-st.Committed)
	// Output:
	// heaps: 1
	// offheap committed at least 4 MiB: true
	// Go limit leaves room for offheap: true
}

// ExampleBudget_Close shows Close giving the Go memory limit back: the
// limit NewBudget found is in force again, and a second Close reports
// ErrClosed.
func ExampleBudget_Close() {
	before := debug.SetMemoryLimit(-1)
	b, err := arena.NewBudget(512<<20, arena.BudgetOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("limit set by the budget:", debug.SetMemoryLimit(-1) != before)
	if err := b.Close(); err != nil {
		panic(err)
	}
	fmt.Println("limit restored:", debug.SetMemoryLimit(-1) == before)
	fmt.Println("closed:", b.Stats().Closed, errors.Is(b.Close(), arena.ErrClosed))
	// Output:
	// limit set by the budget: true
	// limit restored: true
	// closed: true true
}
