package disk_test

import (
	"chronik/core/log"
	"chronik/disk"
)

// The File alias makes every disk.FS a log.FS, and the two File types one type.
var (
	_ log.FS    = disk.NewMem()
	_ log.FS    = disk.OS()
	_ log.FS    = disk.NewErrorFS(disk.NewMem(), disk.FailAfter(0))
	_ log.File  = disk.File(nil)
	_ disk.File = log.File(nil)
)
