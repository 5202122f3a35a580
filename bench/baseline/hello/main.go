// Command hello prints "hello, world": the start-up of the smallest Go
// program, which benchtable compares tapis-token's start-up with.
package main

import "fmt"

func main() { fmt.Println("hello, world") }
