import { PageTitle } from '../ui';

export function RoomsPage() {
  return (
    <section>
      <PageTitle>Rooms</PageTitle>
    </section>
  );
}
