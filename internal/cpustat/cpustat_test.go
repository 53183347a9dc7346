package cpustat

import (
	"os/exec"
	"testing"
)

// Work done by this process and by a waited-for child shows up.
func TestSelfAndChildrenGrow(t *testing.T) {
	self, kids := Self(), Children()
	x := 0
	for i := range 50_000_000 {
		x += i % 7
	}
	if x == 0 || Self() <= self {
		t.Fatalf("self CPU did not grow: %v → %v", self, Self())
	}
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
	if err := cmd.Run(); err != nil {
		t.Skip("no sh:", err)
	}
	if Children() <= kids {
		t.Fatalf("children CPU did not grow: %v → %v", kids, Children())
	}
}
