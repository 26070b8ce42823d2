// Command kind-manifests prints a string constant of kind's node-image builder, read from kind's
// source in the Go module cache: the default CNI and storage manifests and the images they name
// (package sigs.k8s.io/kind/pkg/build/nodeimage, files const_*.go).
// Usage: kind-manifests KIND_MODULE_DIR CONST_NAME
// The constants are string literals joined with `+` and references to other constants of the
// same package; that is all this evaluator understands, and anything else is an error.
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kind-manifests KIND_MODULE_DIR CONST_NAME")
		os.Exit(2)
	}
	value, err := lookup(filepath.Join(os.Args[1], "pkg", "build", "nodeimage"), os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "kind-manifests:", err)
		os.Exit(1)
	}
	fmt.Print(value)
}

func lookup(dir, name string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "const*.go"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("no const*.go files in %s", dir)
	}
	consts := map[string]ast.Expr{}
	fset := token.NewFileSet()
	for _, file := range files {
		parsed, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			return "", err
		}
		for _, decl := range parsed.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i < len(vs.Values) {
						consts[id.Name] = vs.Values[i]
					}
				}
			}
		}
	}
	ev := evaluator{consts: consts, seen: map[string]bool{}}
	expr, ok := consts[name]
	if !ok {
		return "", fmt.Errorf("constant %s not found in %s", name, dir)
	}
	return ev.eval(expr)
}

type evaluator struct {
	consts map[string]ast.Expr
	seen   map[string]bool
}

func (e evaluator) eval(expr ast.Expr) (string, error) {
	switch x := expr.(type) {
	case *ast.BasicLit:
		if x.Kind != token.STRING {
			return "", fmt.Errorf("not a string literal: %s", x.Value)
		}
		return strconv.Unquote(x.Value)
	case *ast.ParenExpr:
		return e.eval(x.X)
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return "", fmt.Errorf("unsupported operator %s", x.Op)
		}
		left, err := e.eval(x.X)
		if err != nil {
			return "", err
		}
		right, err := e.eval(x.Y)
		if err != nil {
			return "", err
		}
		return left + right, nil
	case *ast.Ident:
		if e.seen[x.Name] {
			return "", fmt.Errorf("constant cycle at %s", x.Name)
		}
		ref, ok := e.consts[x.Name]
		if !ok {
			return "", fmt.Errorf("unknown constant %s", x.Name)
		}
		e.seen[x.Name] = true
		defer delete(e.seen, x.Name)
		return e.eval(ref)
	default:
		return "", fmt.Errorf("unsupported expression %T", expr)
	}
}
