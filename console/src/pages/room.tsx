import { PageTitle } from '../ui';

/** One room: id is the room ID from the route #/rooms/<id>. */
export function RoomPage({ id }: { id: string }) {
  return (
    <section>
      <PageTitle>{`Room ${id}`}</PageTitle>
    </section>
  );
}
