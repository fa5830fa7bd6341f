package broker_test

import (
	"testing"

	"github.com/ivschatd/ivschatd/internal/broker"
	"github.com/ivschatd/ivschatd/internal/broker/brokertest"
)

func TestMemory(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		b := broker.NewMemory()
		t.Cleanup(func() { b.Close() })
		return b
	})
}
