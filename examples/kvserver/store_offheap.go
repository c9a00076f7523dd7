package main

import "errors"

func newOffStore(shards, sizeHint int, limit int64) (Store, error) {
	return nil, errors.New("offheap store: waiting for package container")
}
